"""Browser machinery shared by the env kinds that drive Chromium (web, GUI): the host and its context leases
(``host``), an env's hold on them (``session``), the network allow-list (``network``), event-based settling
(``settle``) and set-of-marks drawing (``marks``). Env kinds import this package, never each other."""
