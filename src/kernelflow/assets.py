"""Assets, under Prefect's module path (``prefect.assets``): ``Asset`` names what a
task reads or writes; ``materialize(...)`` makes a task that writes assets; ``assets()``
lists the asset events of this session."""

from kernelflow._assets import Asset, AssetEvent, assets
from kernelflow._materializing import MaterializingTask, materialize

__all__ = ["Asset", "AssetEvent", "MaterializingTask", "assets", "materialize"]
