"""Model folders (writing, checking, their card), 3D-Speaker import, ONNX, Hub."""
