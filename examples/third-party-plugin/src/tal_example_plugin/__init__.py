"""An example third-party tal plugin: a dilated TCN backbone, a synthetic dataset and a metric."""
