"""The protocol adapters: the Open Inference Protocol v2 (`/v2/...`) and TensorFlow Serving's REST
API (`/v1/models/...:predict`), translated to the same engine calls as the native routes."""
