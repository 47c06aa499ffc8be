"""An XMP sidecar that makes `darktable-cli` run negadoctor (darktable's film-negative module).

The history entry's `params` is the module's parameter struct as hex:
`dt_iop_negadoctor_params_t` version 2 (darktable 3.x-4.x, 76 bytes, packed):
film_stock (int32: 1 = colour), Dmin[4], wb_high[4], wb_low[4], D_max, offset,
black, gamma, soft_clip, exposure (float32, little-endian).  The values are
darktable's own "color film" preset (read from a darktable 4.2.1 data.db),
whose Dmin is a typical orange mask: the bench measures speed, not the look.
No blendop_params: darktable then uses its default blending (normal, 100%).
"""
from __future__ import annotations

import struct
from pathlib import Path

NOTE = "negadoctor enabled via XMP history (darktable's 'color film' preset values)"

COLOR_FILM = dict(film_stock=1, Dmin=(1.13, 0.49, 0.27, 0.0), wb_high=(1.0, 1.0, 1.0, 0.0),
                  wb_low=(1.0, 1.0, 1.0, 0.0), D_max=1.6, offset=-0.05, black=0.0755, gamma=4.0,
                  soft_clip=0.75, exposure=0.9245)


def negadoctor_params(p: dict = COLOR_FILM) -> bytes:
    return struct.pack("<i4f4f4f6f", p["film_stock"], *p["Dmin"], *p["wb_high"], *p["wb_low"],
                       p["D_max"], p["offset"], p["black"], p["gamma"], p["soft_clip"], p["exposure"])


XMP = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:darktable="http://darktable.sf.net/"
   darktable:xmp_version="5"
   darktable:history_end="1">
   <darktable:history>
    <rdf:Seq>
     <rdf:li
      darktable:num="0"
      darktable:operation="negadoctor"
      darktable:enabled="1"
      darktable:modversion="2"
      darktable:params="{params}"
      darktable:multi_name=""
      darktable:multi_priority="0"/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def write_xmp(path: Path) -> Path:
    path = Path(path)
    path.write_text(XMP.format(params=negadoctor_params().hex()))
    return path
