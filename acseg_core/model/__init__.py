"""The AC model: configs, the network (``nn/``), the IIC loss, model files, read-outs
(how pixels become clusters or classes) and the majority-filter refinement."""
