from .basket import Basket


def basket(request):
    """``basket_count``: items in the visitor's basket, for the header."""
    return {"basket_count": Basket(request).count() if hasattr(request, "session") else 0}
