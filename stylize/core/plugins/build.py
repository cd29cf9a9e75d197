"""A run's plugins, group by group, found and made from its settings in this one place (checks and runs agree).

For each group, ``*_class`` finds the plugin (what validation reads: its
declared options, nothing constructed) and ``make_*`` constructs it for the
run. The losses are constructed with their layers and weights by
``core.evaluation.objective.build_losses``, from ``loss_classes``.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Protocol, Sequence

from ..contracts import Backend, Loss, Optimizer, StartImage
from .groups import BACKENDS, LOSSES, OPTIMIZERS, STARTS
from .loader import load
from .registry import names

#: The loss that joins a run none of whose losses has the content role (Gatys transfer is content + style).
CONTENT = "content"
#: The start an image path names (``--init photo.png`` is ``--init file --set file.path=photo.png``).
FILE = "file"


class _StartSettings(Protocol):
    """What of ``stylize.core.request.settings.Settings`` choosing a start reads (settings.py imports this package)."""

    init: str

    def options_for(self, name: str) -> Mapping[str, Any]: ...


class _Settings(_StartSettings, Protocol):
    """What of ``Settings`` choosing the other plugins reads."""

    backend: str
    gpu: int
    threads: int | None
    losses: Sequence[str]
    optimizer: str


def backend_class(settings: _Settings) -> type[Backend]:
    """The backend plugin ``settings`` names."""
    return load(BACKENDS, settings.backend)


def make_backend(settings: _Settings, layers: Iterable[str], cls: type[Backend] | None = None) -> Backend:
    """The backend of ``settings``, reading ``layers``, with its options (``cls``: its class, if found already)."""
    return (cls or backend_class(settings))(sorted(set(layers)), gpu=settings.gpu, threads=settings.threads,
                                           **settings.options_for(settings.backend))


def loss_class(name: str) -> type[Loss]:
    """The loss plugin registered as ``name``."""
    return load(LOSSES, name)


def loss_classes(settings: _Settings) -> dict[str, type[Loss]]:
    """The loss plugins a run builds, by name: ``settings.losses``, with ``content`` first when none of them
    has the content role (so ``--loss gram`` is a proper transfer)."""
    classes = {name: loss_class(name) for name in dict.fromkeys(settings.losses)}
    if any(cls.role == "content" for cls in classes.values()):
        return classes
    return {CONTENT: loss_class(CONTENT), **classes}


def optimizer_class(settings: _Settings) -> type[Optimizer]:
    """The optimizer plugin ``settings`` names."""
    return load(OPTIMIZERS, settings.optimizer)


def make_optimizer(settings: _Settings) -> Optimizer:
    """The optimizer plugin ``settings`` names, constructed with the options given for it."""
    return optimizer_class(settings)(**settings.options_for(settings.optimizer))


def chosen_start(init: str) -> tuple[str, dict[str, Any]]:
    """The start plugin ``init`` (``--init``) names and the options it implies: a start's name, or an image path."""
    if init in names(STARTS):
        return init, {}
    return FILE, {"path": init}


def start_class(settings: _StartSettings) -> tuple[str, type[StartImage]]:
    """The start plugin ``settings.init`` names: its name and class (a path names ``file``, existing or not)."""
    name = chosen_start(settings.init)[0]
    return name, load(STARTS, name)


def make_start(settings: _StartSettings) -> StartImage:
    """The start plugin of ``settings``, constructed with its options (cheap: models load in ``image``)."""
    name, implied = chosen_start(settings.init)
    return load(STARTS, name)(**{**implied, **settings.options_for(name)})
