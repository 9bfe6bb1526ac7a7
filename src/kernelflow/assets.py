"""Assets, under Prefect's module path (``prefect.assets``): ``Asset`` names what a
task reads or writes; ``materialize(...)`` makes a task that writes assets; ``assets()``
lists the asset events of this session."""

from kernelflow._assets import Asset, AssetEvent, AssetList, assets
from kernelflow.tasks import MaterializingTask, materialize

__all__ = ["Asset", "AssetEvent", "MaterializingTask", "assets", "materialize"]


# ``kernelflow.assets()`` lists asset events, and importing this module makes the name
# ``kernelflow.assets`` the module: a module that can be called keeps both working.
def _make_callable() -> None:
    import sys
    import types

    class _CallableModule(types.ModuleType):
        def __call__(self) -> AssetList:
            return assets()

    sys.modules[__name__].__class__ = _CallableModule


_make_callable()
