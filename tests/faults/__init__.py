"""Fault replays (issue: trust at the boundaries).

Each test here replays one attack or failure against the kit and asserts it is
handled: refused with a one-line error, or survived, with no data lost. Mark each
with `@pytest.mark.fault("<class of failure>")`; `make bench-faults` runs this
folder and tabulates attacks tried, handled and data lost per class.
"""
