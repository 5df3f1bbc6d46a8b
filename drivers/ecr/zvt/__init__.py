"""ZVT (the German ECR-to-payment-terminal protocol): APDU and BMP/TLV codec (``apdu``), code tables
(``codes``), serial and TCP transports (``transport``) and the ECR-side driver (``terminal``)."""
