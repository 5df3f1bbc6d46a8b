"""Concert V2 ("E+"), the serial ECR protocol of French payment terminals: the link (``link``), the
34-character request and its answer (``messages``), and the ``Terminal`` driver
(``payment_terminal``)."""
