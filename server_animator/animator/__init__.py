"""InfantAnimator rebuilt on stock diffusers: a synthetic reference infant moved by recorded keypoints.

Modules (import them directly; this package imports nothing heavy so that the
``cogma`` command stays quick):

* :mod:`.models` — PoseNet, the face-ID encoder, the pose injection hook;
* :mod:`.attention` — ID cross-attention and face-free temporal attention processors;
* :mod:`.pipeline` — ``InfantAnimatorPipeline`` (windowed, batched-CFG sampler);
* :mod:`.loading` — released checkpoints, conversion, saved pipelines (local files only);
* :mod:`.configs` — the SVD-xt architecture and a tiny one for tests;
* :mod:`.conditioning` — pose images, the reference picture, face embeddings;
* :mod:`.qa` — anonymization QA (pose re-extraction, identity check);
* :mod:`.backend` — the server's ``diffusion`` backend; :mod:`.cli` — ``cogma animate``.
"""
