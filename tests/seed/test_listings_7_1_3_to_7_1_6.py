"""Listings 7-3 to 7-6 (three outputs), the inception module, both residual forms (7.1.4) and the
dual-camera model on one Xception base (7.1.6), unchanged but for `keras` -> `engine` and seeded random data.
Where the chapter leaves `x = ...` or data undefined, the tests define them."""
import numpy as np
import pytest


def build_three_output_model():
    from engine import layers
    from engine import Input
    from engine.models import Model

    vocabulary_size = 50000
    num_income_groups = 10

    posts_input = Input(shape=(None,), dtype='int32', name='posts')
    embedded_posts = layers.Embedding(vocabulary_size, 256)(posts_input)
    x = layers.Conv1D(128, 5, activation='relu')(embedded_posts)
    x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(256, 5, activation='relu')(x)
    x = layers.Conv1D(256, 5, activation='relu')(x)
    x = layers.MaxPooling1D(5)(x)
    x = layers.Conv1D(256, 5, activation='relu')(x)
    x = layers.Conv1D(256, 5, activation='relu')(x)
    x = layers.GlobalMaxPooling1D()(x)
    x = layers.Dense(128, activation='relu')(x)

    age_prediction = layers.Dense(1, name='age')(x)
    income_prediction = layers.Dense(num_income_groups, activation='softmax', name='income')(x)
    gender_prediction = layers.Dense(1, activation='sigmoid', name='gender')(x)

    model = Model(posts_input, [age_prediction, income_prediction, gender_prediction])
    return model


def test_three_output_model_compiles_and_fits_every_way():
    model = build_three_output_model()
    assert model.count_params() == 14146316
    rng = np.random.default_rng(0)
    posts = rng.integers(1, 50000, size=(48, 300))
    age_targets = rng.uniform(18, 80, size=(48, 1))
    income_targets = np.eye(10)[rng.integers(0, 10, 48)]
    gender_targets = rng.integers(0, 2, size=(48, 1)).astype('float32')

    model.compile(optimizer='rmsprop', loss=['mse', 'categorical_crossentropy', 'binary_crossentropy'])
    model.compile(optimizer='rmsprop', loss={'age': 'mse',
                                             'income': 'categorical_crossentropy',
                                             'gender': 'binary_crossentropy'})
    model.compile(optimizer='rmsprop', loss=['mse', 'categorical_crossentropy', 'binary_crossentropy'],
                  loss_weights=[0.25, 1., 10.])
    h1 = model.fit(posts, [age_targets, income_targets, gender_targets], epochs=1, batch_size=64, verbose=0)
    model.compile(optimizer='rmsprop', loss={'age': 'mse',
                                             'income': 'categorical_crossentropy',
                                             'gender': 'binary_crossentropy'},
                  loss_weights={'age': 0.25,
                                'income': 1.,
                                'gender': 10.})
    h2 = model.fit(posts, {'age': age_targets,
                           'income': income_targets,
                           'gender': gender_targets},
                   epochs=1, batch_size=64, verbose=0)
    for h in (h1, h2):
        assert set(h.history) == {"loss", "age_loss", "income_loss", "gender_loss"}
        logs = {k: v[-1] for k, v in h.history.items()}
        assert np.isfinite(list(logs.values())).all()
    logs = model.evaluate(posts, [age_targets, income_targets, gender_targets], verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], 0.25 * logs["age_loss"] + logs["income_loss"] +
                               10 * logs["gender_loss"], rtol=1e-4)
    age, income, gender = model.predict(posts, verbose=0)
    assert age.shape == (48, 1) and income.shape == (48, 10) and gender.shape == (48, 1)


def test_inception_module():
    rng = np.random.default_rng(0)
    from engine import layers, Input, Model
    x = Input(shape=(17, 17, 32))
    branch_a = layers.Conv2D(128, 1, activation='relu', strides=2)(x)

    branch_b = layers.Conv2D(128, 1, activation='relu')(x)
    branch_b = layers.Conv2D(128, 3, activation='relu', strides=2)(branch_b)

    branch_c = layers.AveragePooling2D(3, strides=2)(x)
    branch_c = layers.Conv2D(128, 3, activation='relu')(branch_c)

    branch_d = layers.Conv2D(128, 1, activation='relu')(x)
    branch_d = layers.Conv2D(128, 3, activation='relu')(branch_d)
    branch_d = layers.Conv2D(128, 3, activation='relu', strides=2)(branch_d)
    # As printed, the branches end at 9x9, 8x8, 6x6 and 7x7 and cannot be concatenated: the error
    # names the layer and every shape.
    with pytest.raises(ValueError, match=r"Concatenate.*\(None, 9, 9, 128\).*\(None, 8, 8, 128\)"):
        layers.concatenate([branch_a, branch_b, branch_c, branch_d], axis=-1)

    # With padding='same' (as in the real Inception modules) every branch is 9x9.
    branch_a = layers.Conv2D(128, 1, activation='relu', strides=2, padding='same')(x)
    branch_b = layers.Conv2D(128, 1, activation='relu', padding='same')(x)
    branch_b = layers.Conv2D(128, 3, activation='relu', strides=2, padding='same')(branch_b)
    branch_c = layers.AveragePooling2D(3, strides=2, padding='same')(x)
    branch_c = layers.Conv2D(128, 3, activation='relu', padding='same')(branch_c)
    branch_d = layers.Conv2D(128, 1, activation='relu', padding='same')(x)
    branch_d = layers.Conv2D(128, 3, activation='relu', padding='same')(branch_d)
    branch_d = layers.Conv2D(128, 3, activation='relu', strides=2, padding='same')(branch_d)
    output = layers.concatenate([branch_a, branch_b, branch_c, branch_d], axis=-1)
    assert output.shape == (None, 9, 9, 512)
    model = Model(x, output)
    assert model.predict(rng.random((2, 17, 17, 32)), verbose=0).shape == (2, 9, 9, 512)


def test_residual_connections():
    rng = np.random.default_rng(0)
    from engine import layers, Input, Model
    x = Input(shape=(16, 16, 128))
    y = layers.Conv2D(128, 3, activation='relu', padding='same')(x)
    y = layers.Conv2D(128, 3, activation='relu', padding='same')(y)
    y = layers.Conv2D(128, 3, activation='relu', padding='same')(y)
    y = layers.add([y, x])
    identity = Model(x, y)

    x2 = Input(shape=(16, 16, 64))
    y2 = layers.Conv2D(128, 3, activation='relu', padding='same')(x2)
    y2 = layers.Conv2D(128, 3, activation='relu', padding='same')(y2)
    y2 = layers.MaxPooling2D(2, strides=2)(y2)
    residual = layers.Conv2D(128, 1, strides=2, padding='same')(x2)
    y2 = layers.add([y2, residual])
    projection = Model(x2, y2)
    assert projection.output_shape == (None, 8, 8, 128)

    data = rng.random((2, 16, 16, 128)).astype(np.float32)
    out = identity.predict(data, verbose=0)
    body = Model(x, identity.layers[3].output).predict(data, verbose=0)
    np.testing.assert_allclose(out, body + data, rtol=1e-5, atol=1e-5)
    identity.compile("sgd", "mse")
    identity.fit(data, data, verbose=0)
    projection.compile("sgd", "mse")
    projection.fit(data[..., :64], np.zeros((2, 8, 8, 128)), verbose=0)


def test_xception_parameter_counts_and_weights_policy():
    from engine import applications
    base = applications.Xception(weights=None, include_top=False)
    trainable = sum(int(np.prod(w.shape)) for w in base.trainable_weights)
    assert base.count_params() == 20861480
    assert base.count_params() - trainable == 54528
    assert applications.Xception(weights=None, include_top=True).count_params() == 22910480
    with pytest.raises(ValueError, match="never downloads"):
        applications.Xception(weights='imagenet', include_top=False)


def test_dual_camera_model_shares_one_xception_base():
    rng = np.random.default_rng(0)
    from engine import layers
    from engine import applications
    from engine import Input
    from engine.models import Model

    xception_base = applications.Xception(weights=None, include_top=False)
    left_input = Input(shape=(250, 250, 3))
    right_input = Input(shape=(250, 250, 3))
    left_features = xception_base(left_input)
    right_features = xception_base(right_input)
    merged_features = layers.concatenate([left_features, right_features], axis=-1)
    assert merged_features.shape == (None, 8, 8, 4096)

    model = Model([left_input, right_input], merged_features)
    assert model.count_params() == xception_base.count_params()
    left = rng.random((1, 250, 250, 3)).astype(np.float32)
    right = rng.random((1, 250, 250, 3)).astype(np.float32)
    both = model.predict([left, right], verbose=0)
    assert both.shape == (1, 8, 8, 4096)
    np.testing.assert_allclose(both[..., :2048], xception_base.predict(left, verbose=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(both[..., 2048:], xception_base.predict(right, verbose=0), rtol=1e-4, atol=1e-5)
