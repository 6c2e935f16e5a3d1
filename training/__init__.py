"""Training for fourds_ros: MAE pre-training (`python -m training.pretrain`), readout training
(`python -m training.train_readouts`) and the train benchmark (`python -m training.bench`).
Never imports rclpy.

Laid out as facebookresearch/mae: model and loss (mae.py, decoder.py; readouts_model.py,
losses.py), data (data/; readouts_data.py), typed configs (pretrain_config.py from
configs/*.yaml, readouts_config.py from the command line, both on typed_config.py), processes
(distributed.py), the resumable checkpoint (resume.py), and the loops (pretrain.py,
train_readouts.py)."""
