# unit tests: io
