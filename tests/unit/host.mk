# unit tests: host
