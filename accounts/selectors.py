from .models import User


def user_is_active(*, user_id: int) -> bool:
    """The account exists and is not disabled (a token can outlive both)."""
    return User.objects.filter(pk=user_id, is_active=True).exists()
