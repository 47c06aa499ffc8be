"""The daemon: decoder worker processes (`workers`), the frame processor
(`processor`) that turns complete files into preview and master jobs and
records every transition in the journal."""
