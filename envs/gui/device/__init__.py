"""PhoneOS: the simulated phone (a web app served in-process) and the per-episode app store behind it."""
