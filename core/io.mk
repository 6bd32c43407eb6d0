# I/O workers, the epoll GSource, listeners, connections and TLS.
core_io_sources = \
	core/io-private.h core/io-internal.h \
	core/epoll-source.h core/epoll-source.c \
	core/io-worker.c core/listener.c core/tls.c \
	core/connection-internal.h core/connection.c core/connection-output.c \
	core/connection-carrier.c \
	core/host-protocols-private.h core/host-protocols.c
