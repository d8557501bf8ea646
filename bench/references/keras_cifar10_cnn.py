"""strata's `cifar10_cnn` in Keras (keras/examples/cifar10_cnn.py without augmentation):
Conv2D 32-32-64-64 with MaxPooling and Dropout, Dense 512; RMSprop(1e-4), categorical
cross-entropy, batch 32. Usage: python keras_cifar10_cnn.py EPOCHS [BATCH]"""
from keras_support import keras, EpochTimer, info
from common import args, cifar10, report

epochs, batch = args(32)
(x_train, y_train), (x_test, y_test) = cifar10()
x_train, x_test = x_train.astype("float32") / 255, x_test.astype("float32") / 255
y_train, y_test = keras.utils.to_categorical(y_train, 10), keras.utils.to_categorical(y_test, 10)

L = keras.layers
model = keras.Sequential([
    keras.Input((32, 32, 3)),
    L.Conv2D(32, (3, 3), padding="same", activation="relu"), L.Conv2D(32, (3, 3), activation="relu"),
    L.MaxPooling2D((2, 2)), L.Dropout(0.25),
    L.Conv2D(64, (3, 3), padding="same", activation="relu"), L.Conv2D(64, (3, 3), activation="relu"),
    L.MaxPooling2D((2, 2)), L.Dropout(0.25),
    L.Flatten(), L.Dense(512, activation="relu"), L.Dropout(0.5), L.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.0001), loss="categorical_crossentropy",
              metrics=["accuracy"])
timer = EpochTimer()
model.fit(x_train, y_train, epochs=epochs, batch_size=batch, verbose=2, callbacks=[timer])
_, accuracy = model.evaluate(x_test, y_test, verbose=0)
report("keras", "cifar10_cnn", batch, timer.times, len(x_train), accuracy, **info())
