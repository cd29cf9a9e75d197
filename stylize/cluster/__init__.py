"""One picture's tiles on a Dask cluster: each evaluation's tiles run on the workers, the optimizer stays here.

Importing the package registers it with core's hook (``stylize.core.evaluation.remote``): a run that names a
scheduler finds it there; nothing heavy (Dask, the network) is imported until one does.
"""
from ..core.evaluation import remote as _remote


def _for(settings):
    from .remote import DaskRemote
    return DaskRemote(settings)


_remote.register(_for)
