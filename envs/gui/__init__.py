"""The GUI environment: device control from screenshots on a simulated phone rendered in Chromium."""
