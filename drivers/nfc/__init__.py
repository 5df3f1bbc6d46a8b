"""Contactless (NFC) readers through nfcpy: PN532 on UART, ACR122U on USB, any nfcpy path."""
from .reader import NfcReader, ReaderLost, ReaderSilent, TapResult

__all__ = ["NfcReader", "ReaderLost", "ReaderSilent", "TapResult"]
