"""CoGMA training: datasets, a teacher with multi-modality co-learning, the distilled student, evaluation.

* ``training.data``, ``splits``, ``augment``, ``evaluate``, ``baselines`` — data adapters, splits by infant,
  augmentation, metrics and the hand-crafted baseline;
* ``training.models`` — Infant-20 graph, teacher (CTR-GCN family), plain ST-GCN, the phone student
  (``load_student``);
* ``training.colearning``, ``features``, ``zero_shot`` — co-learning with VLM/CLIP features (training only)
  and zero-shot fidgety scoring;
* ``training.engine``, ``config``, ``experiment``, ``distill`` — the training loop (DDP, resume, bf16),
  YAML configs, what ``cogma train`` runs, distillation and calibration;
* ``training.cli`` — ``cogma train``, ``cogma evaluate``, ``cogma features``.

Importing this package is light; torch loads with the submodules that need it.
"""
