"""ZVT (the German ECR-to-payment-terminal protocol): serial and TCP transports (``link``), APDU and
BMP/TLV codec (``codec``), code tables and the causes they point to (``codes``), completions
(``results``), the ECR-side driver (``client``), the neutral ``Terminal`` over it (``adapter``),
its ``[terminal]`` fields (``section``), preflight check (``check``) and discover probes (``probe``)."""
