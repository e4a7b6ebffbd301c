"""Pure renderers of RancherOS 1.5 `#cloud-config` user-data and of the service configs it carries."""
