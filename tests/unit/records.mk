# unit tests: records
