"""Item features: TF-IDF against scikit-learn, the features x items matrix of a small
catalogue against one computed by hand, bulk loading, and the ITEM_FEATURES checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_recs.checks import check_item_features
from django_recs.content import FeatureBlock, build_item_features, fit_tfidf, transform_tfidf
from django_recs.content.config import configured_features, resolve_path
from django_recs.content.loading import load_item_features, read_item_values
from django_recs.storage.read import ItemCatalog
from tests.content_shop.models import Book, Brand, Poster, Tag
from tests.testapp.models import Category, Product

ITEM_MODELS = ["testapp.Product", "testapp.Gadget", "content_shop.Book", "content_shop.Poster"]

TEXTS = [
    "Red heart T-light holder",
    "WHITE hanging heart t-light holder",
    "",
    "jumbo bag red retrospot, jumbo bag pink",
    "a b c",
    "Café crème: crème brûlée set",
    "heart of wicker small heart",
]


# -- TF-IDF ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"min_df": 2}, {"max_df": 0.3}, {"min_df": 0.2, "max_df": 3},
     {"stop_words": ["holder", "bag"]}],
)
def test_tfidf_equals_scikit_learn(options):
    text = pytest.importorskip("sklearn.feature_extraction.text")
    ours, vocabulary = fit_tfidf(TEXTS, **options)
    sklearn = text.TfidfVectorizer(**options)
    theirs = sklearn.fit_transform(TEXTS)
    assert list(vocabulary.tokens) == list(sklearn.get_feature_names_out())
    np.testing.assert_allclose(vocabulary.idf, sklearn.idf_, rtol=1e-12)
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-12, atol=1e-15)
    unseen = ["red wicker holder zebra", "", "HEART heart heart"]
    np.testing.assert_allclose(
        transform_tfidf(unseen, vocabulary).toarray(), sklearn.transform(unseen).toarray(),
        rtol=1e-12, atol=1e-15,
    )


def test_tfidf_rejects_contradictory_limits():
    with pytest.raises(ValueError, match="max_df"):
        fit_tfidf(TEXTS, min_df=5, max_df=2)


def test_tfidf_of_no_words_is_an_empty_matrix():
    vectors, vocabulary = fit_tfidf(["", "a", "!"])
    assert vectors.shape == (3, 0) and len(vocabulary) == 0


# -- the matrix of a small catalogue, by hand --------------------------------------------


def hand_computed_catalogue():
    """Four books: title (weight 4), brand (1), tags (2); book 2 has nothing.

    Titles "red apple", "red", "", "green apple apple" (4 documents): idf
    apple = red = ln(5/3) + 1, green = ln(5/2) + 1.
    """
    a, g = math.log(5 / 3) + 1, math.log(5 / 2) + 1
    norm3 = math.sqrt((2 * a) ** 2 + g**2)
    title = {  # rows apple, green, red; columns books 0..3; unit vectors times sqrt(4)
        "apple": [2 / math.sqrt(2), 0, 0, 2 * 2 * a / norm3],
        "green": [0, 0, 0, 2 * g / norm3],
        "red": [2 / math.sqrt(2), 2, 0, 0],
    }
    brand = {"A": [1, 1, 0, 0], "B": [0, 0, 0, 1]}
    # Tags with weight 2: book 0 has x and y (sqrt(2) / sqrt(2) each), book 1 only x.
    tags = {"x": [1, math.sqrt(2), 0, 0], "y": [1, 0, 0, 0]}
    return title, brand, tags


def test_feature_matrix_of_blocks_equals_hand_computed():
    title, brand, tags = hand_computed_catalogue()
    blocks = [
        FeatureBlock("shop.Book", "text", "title", 4.0, np.arange(4),
                     ["red apple", "red", "", "green apple apple"]),
        FeatureBlock("shop.Book", "categorical", "brand", 1.0, np.array([0, 1, 3]),
                     ["A", "A", "B"]),
        FeatureBlock("shop.Book", "categorical", "tags", 2.0, np.array([0, 0, 1, 1]),
                     ["x", "y", "x", "x"]),  # a value listed twice counts once
    ]
    features = build_item_features(blocks, 4)
    expected = np.array([*title.values(), *brand.values(), *tags.values()])
    assert list(features.tokens) == [*title, *brand, *tags]
    np.testing.assert_allclose(features.matrix.toarray(), expected, rtol=1e-6)
    assert features.matrix.dtype == np.float32 and features.matrix.shape == (7, 4)
    assert features.items_with_features.tolist() == [True, True, False, True]
    # Columns are sqrt(sum of the weights of the fields an item has) long.
    np.testing.assert_allclose(features.column_norms, [math.sqrt(7), math.sqrt(7), 0, math.sqrt(5)],
                               rtol=1e-6)


@pytest.fixture
def catalogue(db, settings):
    settings.DJANGO_RECS = {
        "ITEM_MODELS": ITEM_MODELS,
        "ITEM_FEATURES": {
            "content_shop.Book": {
                "text": {"title": 4.0},
                "categorical": {"brand": 1.0, "tags": 2.0},
            },
        },
    }
    brand_a, brand_b = Brand.objects.create(name="A"), Brand.objects.create(name="B")
    x, y = Tag.objects.create(name="x"), Tag.objects.create(name="y")
    books = [
        Book.objects.create(title="red apple", brand=brand_a),
        Book.objects.create(title="red", brand=brand_a),
        Book.objects.create(title=""),
        Book.objects.create(title="green apple apple", brand=brand_b),
    ]
    books[0].tags.set([x, y])
    books[1].tags.set([x])
    return {"books": books, "brands": (brand_a, brand_b), "tags": (x, y)}


def book_catalog(books) -> ItemCatalog:
    ct = ContentType.objects.get_for_model(Book).pk
    return ItemCatalog(np.full(len(books), ct, dtype=np.int64),
                       np.array([str(b.pk) for b in books]))


def test_feature_matrix_loaded_from_the_database_equals_hand_computed(catalogue):
    title, brand, tags = hand_computed_catalogue()
    (brand_a, brand_b), (x, y) = catalogue["brands"], catalogue["tags"]
    features = load_item_features(book_catalog(catalogue["books"]))
    # Categorical values are the related objects' primary keys, sorted as text.
    brand_rows = dict(zip(["A", "B"], [str(brand_a.pk), str(brand_b.pk)]))
    tag_rows = dict(zip(["x", "y"], [str(x.pk), str(y.pk)]))
    expected = {
        **{("title", t): v for t, v in title.items()},
        **{("brand", brand_rows[t]): v for t, v in brand.items()},
        **{("tags", tag_rows[t]): v for t, v in tags.items()},
    }
    dense = features.matrix.toarray()
    found = {}
    for block, path in enumerate(features.paths):
        for row in range(features.block_starts[block], features.block_starts[block + 1]):
            found[(str(path), str(features.tokens[row]))] = dense[row].tolist()
    assert set(found) == set(expected)
    for name, values in expected.items():
        np.testing.assert_allclose(found[name], values, rtol=1e-6, err_msg=str(name))


def test_single_item_vector_equals_its_column(catalogue):
    books = catalogue["books"]
    features = load_item_features(book_catalog(books))
    [spec] = configured_features()
    for column, book in enumerate(books):
        values = read_item_values(spec, pks=[book.pk]).of_key(str(book.pk))
        vector = features.vector_of("content_shop.Book", values)
        np.testing.assert_allclose(vector.toarray()[0], features.matrix[:, column].toarray()[:, 0],
                                   rtol=1e-6)


def test_items_of_other_models_and_deleted_items_get_empty_columns(catalogue):
    books = catalogue["books"]
    product = Product.objects.create(name="red apple")
    ct_book = ContentType.objects.get_for_model(Book).pk
    ct_product = ContentType.objects.get_for_model(Product).pk
    catalog = ItemCatalog(np.array([ct_book, ct_product, ct_book]),
                          np.array([str(books[0].pk), str(product.pk), "999999"]))
    features = load_item_features(catalog)
    assert features.items_with_features.tolist() == [True, False, False]


def test_loading_makes_one_query_per_multi_valued_path_not_per_item(catalogue):
    def queries_for(n_books):
        extra = [Book(title=f"book {i} red", brand=catalogue["brands"][0]) for i in range(n_books)]
        Book.objects.bulk_create(extra)
        books = list(Book.objects.order_by("pk"))
        catalog = book_catalog(books)
        ContentType.objects.get_for_model(Book)  # cached from here on
        with CaptureQueriesContext(connection) as queries:
            features = load_item_features(catalog)
        assert features.n_items == len(books)
        return len(queries)

    few, many = queries_for(2), queries_for(60)
    assert few == many == 2  # the single-valued fields, then the tags


def test_paths_through_relations(db, settings):
    settings.DJANGO_RECS = {
        "ITEM_MODELS": ITEM_MODELS,
        "ITEM_FEATURES": {"content_shop.Book": {
            "text": {"brand.name": 1.0, "tags__name": 1.0},
            "categorical": {"brand.country": 1.0, "category": 1.0, "pages": 1.0},
        }},
    }
    books_category = Category.objects.create(name="Cooking")
    brand = Brand.objects.create(name="Penguin Classics", country="GB")
    book = Book.objects.create(title="t", brand=brand, category=books_category, pages=250)
    book.tags.set([Tag.objects.create(name="vegan baking"), Tag.objects.create(name="bread")])
    [spec] = configured_features()
    values = read_item_values(spec).of_key(str(book.pk))
    assert values[("text", "brand.name")] == ["Penguin Classics"]
    assert sorted(values[("text", "tags__name")]) == ["bread", "vegan baking"]
    assert values[("categorical", "brand.country")] == ["GB"]
    assert values[("categorical", "category")] == [str(books_category.pk)]
    assert values[("categorical", "pages")] == ["250"]
    assert resolve_path(Book, "tags.name", kind="text").multi_valued
    assert not resolve_path(Book, "brand.name", kind="text").multi_valued


def test_uuid_items(db, settings):
    settings.DJANGO_RECS = {
        "ITEM_MODELS": ITEM_MODELS,
        "ITEM_FEATURES": {"content_shop.Poster": {"text": {"caption": 1.0}}},
    }
    posters = [Poster.objects.create(caption=c) for c in ("blue sea", "blue sky", "")]
    ct = ContentType.objects.get_for_model(Poster).pk
    catalog = ItemCatalog(np.full(3, ct), np.array([p.pk.hex for p in posters]))
    features = load_item_features(catalog)
    assert features.items_with_features.tolist() == [True, True, False]
    assert set(features.tokens) == {"blue", "sea", "sky"}


def test_blocks_reject_bad_input():
    with pytest.raises(ValueError, match="weight"):
        FeatureBlock("a.B", "text", "name", 0.0, np.arange(1), ["x"])
    with pytest.raises(ValueError, match="kind"):
        FeatureBlock("a.B", "colour", "name", 1.0, np.arange(1), ["x"])
    with pytest.raises(ValueError, match="outside"):
        build_item_features([FeatureBlock("a.B", "text", "name", 1.0, np.array([3]), ["x"])], 2)


def test_no_blocks_is_an_empty_matrix():
    features = build_item_features([], 3)
    assert features.matrix.shape == (0, 3) and not features.items_with_features.any()
    assert sp.issparse(features.matrix)


# -- system checks ------------------------------------------------------------------------


def check_ids(settings, item_features, **extra):
    settings.DJANGO_RECS = {"ITEM_MODELS": ITEM_MODELS, "ITEM_FEATURES": item_features, **extra}
    errors = check_item_features()
    assert all(error.hint for error in errors)
    return sorted(error.id for error in errors), " ".join(error.msg for error in errors)


def test_valid_item_features_pass_the_checks(settings):
    ids, _ = check_ids(settings, {
        "content_shop.Book": {"text": {"title": 2.0, "description": 1, "brand.name": 1.0},
                              "categorical": {"brand": 1.0, "tags": 0.5, "category": 1.0},
                              "min_df": 1, "max_df": 0.9, "stop_words": ["the"]},
        "testapp.product": {"categorical": {"category": 1.0}},
    })
    assert ids == []


@pytest.mark.parametrize(
    "item_features, code, words",
    [
        (["content_shop.Book"], "E040", "must be a dict"),
        ({"content_shop.Book": {}}, "E040", "no text or categorical"),
        ({"content_shop.Book": {"text": ["title"]}}, "E040", "path -> weight"),
        ({"content_shop.Nope": {"text": {"title": 1.0}}}, "E041", "not an installed model"),
        ({"testapp.NotAnItem": {"text": {"name": 1.0}}}, "E041", "not in ITEM_MODELS"),
        ({"content_shop.Book": {"text": {"title": 1.0}, "colour": 1}}, "E042", "colour"),
        ({"content_shop.Book": {"text": {"titel": 1.0}}}, "E043", "no field 'titel'"),
        ({"content_shop.Book": {"text": {"brand": 1.0}}}, "E043", "not on a text field"),
        ({"content_shop.Book": {"text": {"pages": 1.0}}}, "E043", "not on a text field"),
        ({"content_shop.Book": {"text": {"title.name": 1.0}}}, "E043", "plain field"),
        ({"content_shop.Book": {"categorical": {"brand.colour": 1.0}}}, "E044",
         "Brand has no field 'colour'"),
        ({"content_shop.Book": {"categorical": {"tags.name.x": 1.0}}}, "E044", "plain field"),
        ({"content_shop.Book": {"text": {"title": -1}}}, "E045", "finite number > 0"),
        ({"content_shop.Book": {"text": {"title": "heavy"}}}, "E045", "finite number > 0"),
        ({"content_shop.Book": {"text": {"title": 1.0}, "min_df": 0}}, "E046", "min_df"),
        ({"content_shop.Book": {"text": {"title": 1.0}, "max_df": 1.5}}, "E046", "max_df"),
        ({"content_shop.Book": {"text": {"title": 1.0}, "stop_words": "the"}}, "E046",
         "stop_words"),
    ],
)
def test_checks_report_each_problem(settings, item_features, code, words):
    ids, message = check_ids(settings, item_features)
    assert ids == [f"django_recs.{code}"]
    assert words in message


def test_checks_report_content_algorithms_without_features_and_a_bad_fallback(settings):
    algorithms = {"content": {"class": "django_recs.algorithms.ContentKNN"},
                  "similar": {"class": "django_recs.algorithms.ItemKNN"}}
    ids, message = check_ids(settings, {}, ALGORITHMS=algorithms)
    assert ids == ["django_recs.E047"] and "'content'" in message
    ids, message = check_ids(settings, {"content_shop.Book": {"text": {"title": 1.0}}},
                             ALGORITHMS=algorithms, CONTENT_FALLBACK="similar")
    assert ids == ["django_recs.E048"]
    ids, _ = check_ids(settings, {"content_shop.Book": {"text": {"title": 1.0}}},
                       ALGORITHMS=algorithms, CONTENT_FALLBACK="content")
    assert ids == []
