"""The storefront: a browser client of the public store API, served at `/shop/`."""

from gateway.storefront.mount import mount_storefront

__all__ = ["mount_storefront"]
