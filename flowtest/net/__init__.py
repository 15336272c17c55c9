"""The only code that opens sockets: SMTP submission, the IMAP watcher, DNS."""
