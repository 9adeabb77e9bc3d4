"""Pretrained feature banks: frozen ImageNet encoders shipped inside wheels (nothing is
downloaded), cut into levels (:mod:`.encoder`), run tile by tile over whole images
into per-image stores on disk (:mod:`.compute`, :mod:`.store`, cached by content:
:mod:`.cache`), and read back on any model grid for any window (:mod:`.grid`)."""
