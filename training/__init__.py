"""Training for fourds_ros: MAE pre-training (`python -m training.pretrain`), readout training
(`python -m training.train_readouts`) and the train benchmark (`python -m training.bench`).
Never imports rclpy."""
