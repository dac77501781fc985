from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class AdminConfig(DjangoAdminConfig):
    """django.contrib.admin with the project's site (accounts.sites.AdminSite: needs the password).
    docs.djangoproject.com/en/5.2/ref/contrib/admin/#overriding-the-default-admin-site"""

    default_site = "accounts.sites.AdminSite"
