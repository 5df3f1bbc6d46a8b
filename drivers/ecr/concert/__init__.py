"""Concert V2 ("E+"), the serial ECR protocol of French payment terminals: the link (``link``), the
34-character request and its answer (``codec``), what a refusal says (``codes``), the ``Terminal``
driver (``adapter``), its ``[terminal]`` fields (``section``), preflight check (``check``) and
discover probe (``probe``)."""
