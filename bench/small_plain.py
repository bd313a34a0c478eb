"""A plain Keras script, as a user would write it, for `make bench-small` to compare the car default with.
Usage: python bench/small_plain.py DATA.npz SPLIT.json SEED OUT.json"""
import json
import sys

import keras
import numpy as np

data_path, split_path, seed, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
keras.utils.set_random_seed(seed)
with np.load(data_path, allow_pickle=False) as data:
    images, labels, groups = data["images"], data["labels"], data["groups"]
    classes = [str(c) for c in data["class_names"]]
with open(split_path) as handle:
    assignments = json.load(handle)["assignments"]
where = np.array([assignments.get(str(g), "") for g in groups])
x = {s: images[where == s].astype("float32") / 255 for s in ("train", "val", "test")}
y = {s: labels[where == s] for s in ("train", "val", "test")}

model = keras.Sequential([
    keras.Input(images.shape[1:]),
    keras.layers.Conv2D(32, 3, activation="relu", padding="same"),
    keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(64, 3, activation="relu", padding="same"),
    keras.layers.MaxPooling2D(),
    keras.layers.Flatten(),
    keras.layers.Dropout(0.3),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dense(len(classes), activation="softmax"),
])
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
stop = keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True)
model.fit(x["train"], y["train"], validation_data=(x["val"], y["val"]), epochs=30, batch_size=32,
          callbacks=[stop], verbose=0)
predicted = model.predict(x["test"], verbose=0).argmax(axis=1)
with open(out, "w") as handle:
    json.dump({"test_labels": y["test"].tolist(), "test_predicted": predicted.tolist(),
               "test_accuracy": float((predicted == y["test"]).mean()), "class_names": classes}, handle)
