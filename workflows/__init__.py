"""The workflow generator's parts (build.py is the command) and workflows/api_example.py; the folder
also holds the shipped graphs, which ComfyUI lists as the pack's templates."""
