"""napari plugin for fibsynth (npe2 manifest ``napari.yaml``).

* reader: fibsynth volumes (``.tif``/``.tiff``, ``.zarr``, ``.npy``, folders of TIFF slices) open as layers with the
  voxel size as the layer scale (nm, z y x) and fibsynth's metadata in ``layer.metadata["fibsynth"]``;
  structures and label volumes open as labels layers, images as image layers;
* writers: image and labels layers are saved with :func:`fibsynth.io.write_volume`, the voxel size taken from the
  layer's scale and the fibsynth metadata carried back from ``layer.metadata``;
* widget: generate a leveled-wave structure and simulate the BSE image of one slice (Monte Carlo) or of the whole
  stack (fast path).

napari itself is optional: the reader and writer only take and return plain data (napari's LayerData tuples), and
the widget module imports magicgui only when napari asks for the widget.
"""

from fibsynth.napari._reader import napari_get_reader, read_fibsynth
from fibsynth.napari._writer import write_image, write_labels

__all__ = ["napari_get_reader", "read_fibsynth", "write_image", "write_labels"]
