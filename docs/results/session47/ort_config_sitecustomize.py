# Scratch (session 47): every onnxruntime session in this process gets the session config entries in
# FOURDS_SCRATCH_ORT_CONFIG ("key=value;key=value"), added after the backend's own (a later entry wins).
import os

_entries = [e.split("=", 1) for e in os.environ.get("FOURDS_SCRATCH_ORT_CONFIG", "").split(";") if e]
if _entries:
    import onnxruntime as _ort

    _orig = _ort.InferenceSession.__init__

    def _init(self, path, sess_options=None, *a, **kw):
        if sess_options is not None:
            for k, v in _entries:
                sess_options.add_session_config_entry(k, v)
        _orig(self, path, sess_options, *a, **kw)

    _ort.InferenceSession.__init__ = _init
