"""`edgekit ingest STORE --into DATASET.npz`: labeled field samples join the dataset, sessions as groups."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "ingest"
HELP = "add labeled samples of a pulled sample store to a dataset (.npz, or new shards of a shard set) and extend its split file"
NEEDS: tuple[str, ...] = ()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stores", type=Path, nargs="+", help="host-side sample store(s) with labels.db")
    parser.add_argument("--into", type=Path, required=True,
                        help="dataset .npz to extend (created if missing), or a shard set folder (new shards are "
                             "appended; old shards are never rewritten)")
    parser.add_argument("--base", type=Path, help="dataset to start from when --into does not exist yet")
    parser.add_argument("--split", type=Path, help="split file to extend (earlier groups keep their split)")
    parser.add_argument("--split-out", type=Path, help="where to write the new split (default: --split)")
    parser.add_argument("--fresh-test", type=float, default=0,
                        help="newest new sessions to hold out as a fresh test set (N, or a fraction < 1)")
    parser.add_argument("--bundle", type=Path, help="bundle whose preprocessing the car used "
                        "(default: the registry's production)")
    parser.add_argument("--registry", type=Path, default=None)
    parser.add_argument("--name", help="model name in the registry")
    parser.add_argument("--drop-leaks", action="store_true",
                        help="drop new samples that are near-copies of images in another split "
                             "(default: refuse the ingest and write nothing)")
    parser.add_argument("--leak-threshold", type=int, default=4,
                        help="largest dHash Hamming distance that counts as a near-copy (default 4, as audit)")


def _report_leaks(checked, examples_from) -> None:
    """Print the leak check; refuse (nothing written) unless the leaking new samples were dropped."""
    from edge.errors import UserError

    print(checked.leaks.summary())
    if checked.leaks.leaks:
        print("\n".join(checked.leaks.examples(examples_from)))
        if not checked.dropped:
            raise UserError(f"{len(checked.leaks.leaking)} new samples are near-copies of images in another "
                            "split (a leak between train and the held-out sets): nothing was written; drop "
                            "them with --drop-leaks, or discard them in the labels (`edgekit label serve`)")
        print(f"dropped {checked.dropped} leaking new samples (--drop-leaks)")


def _spec_and_classes(args: argparse.Namespace):
    from edge.bundle import open_bundle
    from train.registry import Registry

    bundle_path = args.bundle or Registry(args.registry).resolve(args.name or "production").bundle_path
    bundle = open_bundle(bundle_path, verify=True)
    return bundle.preprocess, bundle.labels


def run(args: argparse.Namespace) -> int:
    from edge.errors import UserError
    from train.data.dataset import Dataset
    from train.ingest import merge, per_class_session_counts, split_checked, store_dataset
    from train.labeling.samples import open_samples
    from train.splits import load_split

    spec, labels = _spec_and_classes(args)
    from train.data.shards import is_shard_set

    if is_shard_set(args.into):
        return _into_shards(args, spec)
    base_path = args.into if args.into.exists() else args.base
    dataset = Dataset.load(base_path) if base_path else None
    first_new = len(dataset) if dataset is not None else 0
    class_names = dataset.class_names if dataset is not None else labels
    total_added = 0
    for store in args.stores:
        field = store_dataset(open_samples(store), spec, class_names)
        dataset, added = merge(dataset, field)
        total_added += added
        print(f"{store}: {len(field)} labeled samples, {added} new")
        for session, counts in sorted(per_class_session_counts(field).items()):
            print(f"  session {session}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if dataset is None or len(dataset) == 0:
        raise UserError("no labeled samples to ingest: label them first (`edgekit label serve|import|auto`)")
    checked = None
    if args.split or args.split_out:
        previous = load_split(args.split) if args.split and args.split.exists() else None
        checked = split_checked(dataset, first_new, previous, args.fresh_test, args.drop_leaks, args.leak_threshold)
        _report_leaks(checked, dataset)
        dataset, total_added = checked.dataset, total_added - checked.dropped
    elif total_added:
        print("leak check skipped: give --split (or --split-out) to check new samples against the splits")
    dataset.save(args.into)
    print(f"dataset {args.into}: {len(dataset)} samples (+{total_added}), classes {', '.join(dataset.class_names)}")
    if checked is not None:
        out = args.split_out or args.split
        checked.split.save(out)
        counts = checked.split.counts(dataset)
        print(f"split {out}: " + ", ".join(f"{k} {sum(v)}" for k, v in counts.items())
              + (f"; fresh test = sessions {', '.join(checked.fresh)}" if checked.fresh else ""))
    return 0


def _into_shards(args: argparse.Namespace, spec) -> int:
    """Append the stores' new labeled samples to a shard set as new shards (the leak check reads the
    index's dHashes, no shard); the split file is extended as for a .npz."""
    import numpy as np

    from edge.errors import UserError
    from train.data.dataset import concat
    from train.data.shards import ShardSet, append_records, records_from_arrays
    from train.ingest import per_class_session_counts, split_checked_shards, store_dataset
    from train.labeling.samples import open_samples
    from train.splits import load_split

    shards = ShardSet.open(args.into)
    known = set(shards.sources.tolist())
    fields = []
    for store in args.stores:
        field = store_dataset(open_samples(store), spec, shards.class_names)
        fresh = np.asarray([s not in known for s in field.sources.tolist()], bool)
        new = field.subset(np.flatnonzero(fresh))
        known.update(new.sources.tolist())
        print(f"{store}: {len(field)} labeled samples, {len(new)} new")
        for session, counts in sorted(per_class_session_counts(field).items()):
            print(f"  session {session}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if len(new):
            fields.append(new)
    if not fields:
        print(f"shard set {args.into}: nothing new to add ({len(shards)} samples)")
        return 0
    new = concat(fields, name="field") if len(fields) > 1 else fields[0]
    if new.image_size != shards.image_size:
        raise UserError(f"field samples are {new.image_size} but the shard set is {shards.image_size}: "
                        "use the bundle of a model trained on this dataset")
    checked = None
    if args.split or args.split_out:
        previous = load_split(args.split) if args.split and args.split.exists() else None
        checked = split_checked_shards(shards, new, previous, args.fresh_test, args.drop_leaks, args.leak_threshold)
        _report_leaks(checked, checked.leak_columns)
        new = checked.dataset
    else:
        print("leak check skipped: give --split (or --split-out) to check new samples against the splits")
    added = append_records(args.into, records_from_arrays(new.images, new.labels, new.groups, new.sources, new.subsets))
    print(f"shard set {args.into}: {len(shards) + added} samples (+{added}), classes {', '.join(shards.class_names)}")
    if checked is not None:
        out = args.split_out or args.split
        checked.split.save(out)
        counts = checked.split.counts(checked.columns)
        print(f"split {out}: " + ", ".join(f"{k} {sum(v)}" for k, v in counts.items())
              + (f"; fresh test = sessions {', '.join(checked.fresh)}" if checked.fresh else ""))
    return 0
