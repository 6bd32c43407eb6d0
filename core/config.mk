# core: the configuration file, typed option tables and the plugin loader
core_config_sources = \
	core/config-private.h core/config.c core/options.c \
	core/plugin-loader-private.h core/plugin-loader.c
