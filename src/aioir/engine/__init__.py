"""Training engine: one LightningModule, callbacks, data module, YAML configs, the run loop.

- :mod:`~aioir.engine.config` — YAML → validated dataclasses (``load_config``);
- :mod:`~aioir.engine.module` — ``RestorationModule`` (losses, AdamW + schedules, validation);
- :mod:`~aioir.engine.datamodule` — ``RestorationDataModule`` (synthetic, PromptIR, UDAIR data);
- :mod:`~aioir.engine.callbacks` — ``EMACallback``;
- :mod:`~aioir.methods.udair.bank_accumulation` — UDAIR's source bank (accumulate, final pass, file format);
- :mod:`~aioir.engine.run` — ``train(config, output, resume=…)``: fit, checkpoints, export.
- :mod:`~aioir.engine.validation` — per-task validation scores (with or without Lightning);
- :mod:`~aioir.engine.filter_bank` — ``fit(config, output)``: a filter bank around a trained
  restorer (``aioir fit-filter-bank``), with its own config and no trainer.

Submodules are imported explicitly (importing this package imports nothing heavy).
"""
