"""Field sample log: keep the frames worth learning from, lose none, never fill the card.

Public API: SampleStore (the store on disk), SampleLogger (the runtime Part),
LogPolicy, and the `edgekit run` hook in edge.samplelog.options.
"""

from edge.samplelog.logger import SampleLogger, new_session_id
from edge.samplelog.policies import LogPolicy
from edge.samplelog.store import SampleStore

__all__ = ["LogPolicy", "SampleLogger", "SampleStore", "new_session_id"]
