"""The web environments: a real browser (Playwright + Chromium), MiniWoB++ tasks and a generated shop."""
