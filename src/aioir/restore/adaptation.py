"""The hook through which test-time adaptation (TTA) plugs into restoration.

Restoration calls a :class:`TestTimeAdapter` instead of the plain forward when ``tta`` is asked
for. Implementations register a factory per architecture with
:func:`register_test_time_adapter` when their method package is loaded
(:func:`aioir.plugins.load_methods`, on first need; no file-system scanning). When no factory
exists for a model, asking for TTA raises :class:`~aioir.errors.ConfigError`
("test-time adaptation is not available for model X") — there is no fallback that pretends to
adapt.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

from aioir.errors import ConfigError
from aioir.models.wrappers import unwrap
from aioir.plugins import Registry

__all__ = [
    "AdapterFactory",
    "TestTimeAdapter",
    "adapter_for_task",
    "get_test_time_adapter",
    "model_architecture",
    "register_test_time_adapter",
]


@runtime_checkable
class TestTimeAdapter(Protocol):
    """Adapts a model to one input, restores it, and leaves the model as it found it.

    ``model`` is the network itself (inside any wrapper, :func:`aioir.models.wrappers.unwrap`);
    ``image`` is B×3×H×W float32 in [0, 1] on the model's device. ``restore`` is the ordinary
    (padded / tiled, no-grad) restoration of a tensor, to be called with the adapted model; an
    adapter may instead return its own forward's output. The call happens outside
    :func:`torch.inference_mode`, so the adapter may compute gradients. It must reset whatever it
    changed before returning (episodic adaptation).

    An adapter that needs each image's task (an oracle label, e.g. UDAIR's faithful mode) may
    say so with a ``needs_task`` attribute (true) and offer ``for_task(task) -> adapter``:
    :meth:`aioir.restore.Restorer.restore_tensor` uses it when given a ``task`` (``aioir
    evaluate`` gives each benchmark column's), :func:`adapter_for_task`.
    """

    def __call__(
        self, model: nn.Module, image: Tensor, restore: Callable[[Tensor], Tensor]
    ) -> Tensor: ...


AdapterFactory = Callable[..., TestTimeAdapter]  # (model, **options) -> adapter


def adapter_for_task(adapter: TestTimeAdapter, task: str | None) -> TestTimeAdapter:
    """``adapter.for_task(task)`` when the adapter needs a task (``needs_task``) and ``task`` is
    given; ``adapter`` itself otherwise."""
    if task and getattr(adapter, "needs_task", False):
        for_task = getattr(adapter, "for_task", None)
        if callable(for_task):
            chosen: TestTimeAdapter = for_task(task)
            return chosen
    return adapter


ADAPTERS: Registry[AdapterFactory] = Registry("test-time adapter for architecture")


def register_test_time_adapter(architecture: str) -> Callable[[AdapterFactory], AdapterFactory]:
    """Register the decorated ``factory(model) -> TestTimeAdapter`` for ``architecture``."""

    def decorator(factory: AdapterFactory) -> AdapterFactory:
        return ADAPTERS.register(architecture.lower(), factory)

    return decorator


def model_architecture(model: nn.Module) -> str:
    """The registered architecture of the network inside ``model`` (:func:`unwrap`; its
    ``aioir_config``), else its class name."""
    model = unwrap(model)
    config = getattr(model, "aioir_config", None)
    if isinstance(config, dict) and config.get("architecture"):
        return str(config["architecture"]).lower()
    return type(model).__name__.lower()


def get_test_time_adapter(
    model: nn.Module, name: str | None = None, **options: Any
) -> TestTimeAdapter:
    """The registered adapter for the network inside ``model`` (:func:`unwrap`), built with
    ``options`` (the adapter's own, e.g. ``mode``, ``task``); ConfigError naming ``name`` when
    the architecture has none."""
    factory = ADAPTERS.get(model_architecture(model))
    if factory is None:
        label = name or model_architecture(model)
        raise ConfigError(f"test-time adaptation is not available for model {label}")
    return factory(unwrap(model), **options)
