"""The networks: DCGAN and SN-ResNet generators and discriminators, and their layers."""
