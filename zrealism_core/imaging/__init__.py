"""Image plumbing: arrays and files, masks, colour spaces, colour lock, video files, the evaluator panel, the bundled sample."""
