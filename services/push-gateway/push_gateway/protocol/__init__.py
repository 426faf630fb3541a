"""The client protocol, sans-I/O: frames in, replies, pushes and close instructions out."""
