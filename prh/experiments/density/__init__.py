"""Caption density (Fig. 9, App. E): denser captions, more alignment to vision?"""
