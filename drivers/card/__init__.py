"""Card formats the drivers and the virtual bench share: EMV (ATR, APDUs, BER-TLV) and ISO 7811 tracks."""
