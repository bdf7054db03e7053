"""cfsslpy: CloudFlare's CFSSL PKI/TLS toolkit, reimplemented in Python as one self-contained executable."""

__version__ = "0.1.0"
