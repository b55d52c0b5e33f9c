"""The front door: FastAPI under uvicorn. Holds no model; translates HTTP to IPC messages and back."""
