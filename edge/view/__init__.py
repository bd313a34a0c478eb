"""See what the car sees: `edgekit run --view [HOST:]PORT` serves a live page from the running runtime.

The newest frame as MJPEG with the region of interest drawn, the label, confidence and
top-k, the model version (and hot swaps), fps, latency, skipped frames, the sample log's
counters and its last samples, plus /api/state for scripts. It costs the car almost
nothing while nobody watches (no encoding without a client) and is safe by default
(loopback unless told otherwise; elsewhere a token and a Host check). See docs/edge.md.

    edge.view.settings  parse `--view` / `[view]` (imported by the runtime's config)
    edge.view.guard     Host and token checks
    edge.view.live      LiveView: state, encoder thread, thumbnails
    edge.view.server    the HTTP server and its fixed routes
    edge.view.page      the page and its script
"""
