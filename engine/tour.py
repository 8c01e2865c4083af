"""A tour of the seed chapter's models (Deep Learning with Python, 7.1: the functional API).

`python -m engine` builds each model the engine supports, prints its summary,
trains it a few epochs on generated data with Keras-style progress, and ends
with a table of seconds per epoch.  Each stop is written as the chapter writes
it, with `keras` replaced by `engine`.
"""
import time

import numpy as np

import engine
from engine import Input, layers
from engine.models import Model, Sequential
from engine.utils import to_categorical


class Stop:
    """One model of the tour: how to build it, the data to train it on and how long to train."""

    def __init__(self, title, listing, build, data, epochs, batch_size, requires=()):
        self.title, self.listing = title, listing
        self.build, self.data = build, data
        self.epochs, self.batch_size = epochs, batch_size
        self.requires = requires

    def available(self):
        return all(hasattr(engine.layers, name) for name in self.requires)


class EpochTimer(engine.callbacks.Callback):
    """Wall time of each epoch, so the table can leave out the first one (one-time costs)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


# -- 7.1.1: the same model, Sequential and functional ----------------------------------------------
def build_sequential():
    seq_model = Sequential()
    seq_model.add(layers.Dense(32, activation='relu', input_shape=(64,)))
    seq_model.add(layers.Dense(32, activation='relu'))
    seq_model.add(layers.Dense(10, activation='softmax'))
    seq_model.compile(optimizer='rmsprop', loss='categorical_crossentropy')
    return seq_model


def build_functional():
    input_tensor = Input(shape=(64,))
    x = layers.Dense(32, activation='relu')(input_tensor)
    x = layers.Dense(32, activation='relu')(x)
    output_tensor = layers.Dense(10, activation='softmax')(x)
    model = Model(input_tensor, output_tensor)
    model.compile(optimizer='rmsprop', loss='categorical_crossentropy')
    return model


def dense_data(rng):
    return np.random.random((1000, 64)), np.random.random((1000, 10))


# -- 7.1.2: question answering, two inputs (listings 7-1, 7-2) --------------------------------------
def build_question_answering():
    text_vocabulary_size = 10000
    question_vocabulary_size = 10000
    answer_vocabulary_size = 500
    text_input = Input(shape=(None,), dtype='int32', name='text')
    embedded_text = layers.Embedding(text_vocabulary_size, 64)(text_input)
    encoded_text = layers.LSTM(32)(embedded_text)
    question_input = Input(shape=(None,), dtype='int32', name='question')
    embedded_question = layers.Embedding(question_vocabulary_size, 32)(question_input)
    encoded_question = layers.LSTM(16)(embedded_question)
    concatenated = layers.concatenate([encoded_text, encoded_question], axis=-1)
    answer = layers.Dense(answer_vocabulary_size, activation='softmax')(concatenated)
    model = Model([text_input, question_input], answer)
    model.compile(optimizer='rmsprop', loss='categorical_crossentropy', metrics=['acc'])
    return model


def question_answering_data(rng):
    num_samples, max_length = 1000, 100
    text = np.random.randint(1, 10000, size=(num_samples, max_length))
    question = np.random.randint(1, 10000, size=(num_samples, max_length))
    answers = to_categorical(np.random.randint(0, 500, size=num_samples), 500)
    return {'text': text, 'question': question}, answers


# -- 7.1.3: three outputs from one post (listings 7-3 to 7-6) -------------------------------------
def build_three_outputs():
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
    model.compile(optimizer='rmsprop', loss={'age': 'mse', 'income': 'categorical_crossentropy',
                                             'gender': 'binary_crossentropy'},
                  loss_weights={'age': 0.25, 'income': 1., 'gender': 10.})
    return model


def three_outputs_data(rng):
    n = 1000  # the chapter does not size its data; 1000 posts of 500 words, as the benchmark
    posts = rng.integers(1, 50000, size=(n, 500))
    targets = {'age': rng.uniform(18, 80, size=(n, 1)),
               'income': to_categorical(rng.integers(0, 10, size=n), 10),
               'gender': rng.integers(0, 2, size=(n, 1)).astype('float32')}
    return posts, targets


# -- 7.1.5: one LSTM shared by two branches ------------------------------------------------------------
def build_shared_lstm():
    lstm = layers.LSTM(32)
    left_input = Input(shape=(None, 128))
    left_output = lstm(left_input)
    right_input = Input(shape=(None, 128))
    right_output = lstm(right_input)
    merged = layers.concatenate([left_output, right_output], axis=-1)
    predictions = layers.Dense(1, activation='sigmoid')(merged)
    model = Model([left_input, right_input], predictions)
    model.compile(optimizer='rmsprop', loss='binary_crossentropy', metrics=['acc'])
    return model


def shared_lstm_data(rng):
    left_data = rng.standard_normal((1000, 50, 128)).astype('float32')
    right_data = rng.standard_normal((1000, 50, 128)).astype('float32')
    targets = rng.integers(0, 2, size=(1000, 1)).astype('float32')
    return [left_data, right_data], targets


# -- 7.1.4: an inception module and residual connections, each under a small classifier -------------
def build_inception():
    x = Input(shape=(17, 17, 32))
    # The chapter's branches end at different sizes; padding='same' (as real Inception) aligns them.
    branch_a = layers.Conv2D(128, 1, activation='relu', strides=2, padding='same')(x)
    branch_b = layers.Conv2D(128, 1, activation='relu', padding='same')(x)
    branch_b = layers.Conv2D(128, 3, activation='relu', strides=2, padding='same')(branch_b)
    branch_c = layers.AveragePooling2D(3, strides=2, padding='same')(x)
    branch_c = layers.Conv2D(128, 3, activation='relu', padding='same')(branch_c)
    branch_d = layers.Conv2D(128, 1, activation='relu', padding='same')(x)
    branch_d = layers.Conv2D(128, 3, activation='relu', padding='same')(branch_d)
    branch_d = layers.Conv2D(128, 3, activation='relu', strides=2, padding='same')(branch_d)
    output = layers.concatenate([branch_a, branch_b, branch_c, branch_d], axis=-1)
    output = layers.Dense(10, activation='softmax')(layers.GlobalAveragePooling2D()(output))
    model = Model(x, output)
    model.compile(optimizer='rmsprop', loss='categorical_crossentropy', metrics=['acc'])
    return model


def inception_data(rng):
    return rng.random((128, 17, 17, 32)).astype('float32'), to_categorical(rng.integers(0, 10, 128), 10)


def build_residual():
    x = Input(shape=(16, 16, 64))
    y = layers.Conv2D(128, 3, activation='relu', padding='same')(x)
    y = layers.Conv2D(128, 3, activation='relu', padding='same')(y)
    y = layers.MaxPooling2D(2, strides=2)(y)
    residual = layers.Conv2D(128, 1, strides=2, padding='same')(x)
    y = layers.add([y, residual])
    z = layers.Conv2D(128, 3, activation='relu', padding='same')(y)
    z = layers.Conv2D(128, 3, activation='relu', padding='same')(z)
    z = layers.Conv2D(128, 3, activation='relu', padding='same')(z)
    z = layers.add([z, y])
    output = layers.Dense(1, activation='sigmoid')(layers.GlobalAveragePooling2D()(z))
    model = Model(x, output)
    model.compile(optimizer='rmsprop', loss='binary_crossentropy', metrics=['acc'])
    return model


def residual_data(rng):
    return rng.random((128, 16, 16, 64)).astype('float32'), rng.integers(0, 2, (128, 1)).astype('float32')


# -- 7.1.6: one Xception base seeing through two cameras -------------------------------------------
def build_dual_camera():
    from engine import applications
    xception_base = applications.Xception(weights=None, include_top=False)
    left_input = Input(shape=(250, 250, 3))
    right_input = Input(shape=(250, 250, 3))
    left_features = xception_base(left_input)
    right_features = xception_base(right_input)
    merged_features = layers.concatenate([left_features, right_features], axis=-1)
    return Model([left_input, right_input], merged_features)


def dual_camera_data(rng):
    return [rng.random((2, 250, 250, 3)).astype('float32'), rng.random((2, 250, 250, 3)).astype('float32')], None


STOPS = [
    Stop("Sequential model", "7.1.1", build_sequential, dense_data, 10, 128),
    Stop("Functional twin", "7.1.1", build_functional, dense_data, 10, 128),
    Stop("Question answering (2 inputs)", "7-1, 7-2", build_question_answering, question_answering_data, 3, 128,
         requires=("Embedding", "LSTM")),
    Stop("Shared LSTM (2 branches)", "7.1.5", build_shared_lstm, shared_lstm_data, 3, 128, requires=("LSTM",)),
    Stop("Three outputs (age, income, gender)", "7-3 to 7-6", build_three_outputs, three_outputs_data, 2, 64,
         requires=("Embedding", "Conv1D", "MaxPooling1D", "GlobalMaxPooling1D")),
    Stop("Inception module", "7.1.4", build_inception, inception_data, 3, 32,
         requires=("Conv2D", "AveragePooling2D")),
    Stop("Residual connections", "7.1.4", build_residual, residual_data, 3, 32,
         requires=("Conv2D", "MaxPooling2D")),
    Stop("Dual camera, one Xception (predict)", "7.1.6", build_dual_camera, dual_camera_data, 0, 2,
         requires=("SeparableConv2D", "BatchNormalization")),
]


def run(stops=None, verbose=1):
    engine.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    rows = []
    for stop in stops or STOPS:
        print(f"\n=== {stop.title} (listing {stop.listing}) ===")
        if not stop.available():
            print(f"skipped: needs layers not in this build yet ({', '.join(stop.requires)})")
            rows.append((stop, None, None))
            continue
        model = stop.build()
        model.summary()
        x, y = stop.data(rng)
        if stop.epochs == 0:  # a model the chapter only runs forward
            model.predict(x, batch_size=stop.batch_size, verbose=0)
            start = time.perf_counter()
            model.predict(x, batch_size=stop.batch_size, verbose=verbose)
            rows.append((stop, model.count_params(), time.perf_counter() - start))
            continue
        timer = EpochTimer()
        model.fit(x, y, epochs=stop.epochs, batch_size=stop.batch_size, verbose=verbose, callbacks=[timer])
        timed = timer.seconds[1:] or timer.seconds
        per_epoch = sum(timed) / len(timed)
        rows.append((stop, model.count_params(), per_epoch))
    print("\n=== Seconds per epoch (the first epoch left out when there are several; "
          "for predict-only models, seconds per predict) ===")
    print(f"{'model':<40} {'listing':<12} {'params':>12} {'s/epoch':>10}")
    for stop, params, per_epoch in rows:
        if params is None:
            print(f"{stop.title:<40} {stop.listing:<12} {'-':>12} {'skipped':>10}")
        else:
            print(f"{stop.title:<40} {stop.listing:<12} {params:>12,} {per_epoch:>10.4f}")
    print(f"\nthreads: {engine.config.get_num_threads()}, OpenMP: {engine.config.openmp_enabled()}")
    return rows
